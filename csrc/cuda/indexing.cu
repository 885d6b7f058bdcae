// PLACEHOLDER (session 5 wiring): gather/scatter-add/take/index_add/nonzero, cumsum/cumprod, flip/tile/pad; being written.
