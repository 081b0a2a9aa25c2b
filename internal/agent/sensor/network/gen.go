package network

// The eBPF program is compiled from bpf/network.bpf.c into the committed
// network_bpfel.o and network_bpfeb.o, with Go bindings beside them, so the
// product builds with the Go toolchain alone. To regenerate after changing
// the C source (Debian: apt-get install clang llvm libbpf-dev):
//
//	go generate ./internal/agent/sensor/network/
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -tags linux -target bpfel,bpfeb -type event -type dns_msg network bpf/network.bpf.c -- -O2 -g -Wall -Werror -I/usr/include
