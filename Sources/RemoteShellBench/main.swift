print("remoteshell-bench: not yet written")
