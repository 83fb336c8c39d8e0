package live

import (
	"bufio"
	"io"
	"sync"
)

// writeBufferSize is the size of the write buffers streams borrow.
const writeBufferSize = 4096

// writerPool holds the write buffers of the streams that are writing.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}

// connWriter is a client's buffered writer that holds a buffer only
// between its first write and the next flush: an idle client owns no
// buffer, so thousands of idle streams cost no write buffers.
type connWriter struct {
	conn io.Writer
	bw   *bufio.Writer
}

func (w *connWriter) buf() *bufio.Writer {
	if w.bw == nil {
		w.bw = writerPool.Get().(*bufio.Writer)
		w.bw.Reset(w.conn)
	}
	return w.bw
}

// Write buffers p; errors surface at Flush.
func (w *connWriter) Write(p []byte) {
	_, _ = w.buf().Write(p)
}

// WriteString buffers s; errors surface at Flush.
func (w *connWriter) WriteString(s string) {
	_, _ = w.buf().WriteString(s)
}

// Flush sends what is buffered and gives the buffer back.
func (w *connWriter) Flush() error {
	if w.bw == nil {
		return nil
	}
	err := w.bw.Flush()
	w.bw.Reset(nil)
	writerPool.Put(w.bw)
	w.bw = nil
	return err
}
