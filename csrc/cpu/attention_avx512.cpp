// Placeholder: the attention kernels are being written (issue 7).
