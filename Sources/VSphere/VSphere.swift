/// A client for the VMware vSphere SOAP API.
public enum VSphere {}
