"""Training loops and the pure, jittable step functions they are made of."""
