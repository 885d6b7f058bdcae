// PLACEHOLDER (session 5 wiring): batch norm forward (train/eval) and backward; being written.
