/// Simulated guests for the VMs of a vSphere simulator.
public enum Lab {}
