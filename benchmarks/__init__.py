"""fibrosim benchmark suite (pytest-benchmark) and the runner that writes RESULTS.md."""
