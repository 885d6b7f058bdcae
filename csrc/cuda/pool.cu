// PLACEHOLDER (session 5 wiring): max/avg/adaptive pooling forward and backward; being written.
