// PLACEHOLDER (session 5 wiring): cross_entropy_forward/backward, logsumexp; being written.
