// PLACEHOLDER (session 5 wiring): fused SGD/Adam/AdamW/RMSprop/Adagrad/Adadelta updates; being written.
