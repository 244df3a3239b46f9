print("wasserstein")
