"""NAS-Bench-201's cell space (Dong & Yang, ICLR 2020), scored by looking its cells up."""
