/// An SSH client for work inside guests.
public enum RemoteShell {}
