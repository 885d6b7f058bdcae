// PLACEHOLDER (session 5 wiring): RNN/LSTM/GRU layer forward and backward through time; being written.
