"""Neural-network building blocks (filled in by the nn modules)."""
