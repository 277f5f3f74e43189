package gateway

import "sync"

// proxyBufferSize is the copy buffer ReverseProxy would allocate itself.
const proxyBufferSize = 32 << 10

// bufferPool recycles ReverseProxy's copy buffers. Without one,
// ReverseProxy allocates (and zeroes) 32 KiB for every response it copies:
// most of the garbage a proxied request makes, and with it most of the
// garbage collector's work under load. Buffers are kept as array pointers
// so that Put does not allocate. Nothing leaks between requests: a copy
// writes out only the bytes it has just read into the buffer.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[proxyBufferSize]byte); ok {
		return v[:]
	}
	return make([]byte, proxyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= proxyBufferSize {
		b.p.Put((*[proxyBufferSize]byte)(buf[:proxyBufferSize]))
	}
}
