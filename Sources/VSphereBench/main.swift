print("vsphere-bench: not yet written")
