// PLACEHOLDER (session 5 wiring): Philox counter-based random numbers (dropout masks, rand, randn); being written.
