"""Protocol peers for the driver tests: fake robots that speak the vendor protocol on a pty or a socket."""
