"""In-process engine benchmarks: two sans-I/O engines joined without sockets."""
