package data

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

// tupleReader reads PostgreSQL's binary COPY format.
type tupleReader struct {
	r     *bufio.Reader
	arena []byte
	lens  []int32
}

func newTupleReader(r io.Reader) (*tupleReader, error) {
	tr := &tupleReader{r: bufio.NewReaderSize(r, 1<<16)}
	hdr := make([]byte, 19)
	if _, err := io.ReadFull(tr.r, hdr); err != nil {
		return nil, fmt.Errorf("binary COPY header: %w", err)
	}
	if !bytes.Equal(hdr[:11], copySignature) {
		return nil, errors.New("binary COPY header: bad signature")
	}
	if ext := binary.BigEndian.Uint32(hdr[15:19]); ext > 0 {
		if _, err := tr.r.Discard(int(ext)); err != nil {
			return nil, err
		}
	}
	return tr, nil
}

// next reads one tuple into fields (reused; nil is NULL); false at the
// end of the stream. The fields stay valid until the next call.
func (tr *tupleReader) next(fields [][]byte) (bool, error) {
	var b [4]byte
	if _, err := io.ReadFull(tr.r, b[:2]); err != nil {
		return false, err
	}
	n := int16(binary.BigEndian.Uint16(b[:2]))
	if n == -1 {
		return false, nil
	}
	if int(n) != len(fields) {
		return false, fmt.Errorf("binary COPY: tuple of %d fields, expected %d", n, len(fields))
	}
	tr.arena = tr.arena[:0]
	if cap(tr.lens) < int(n) {
		tr.lens = make([]int32, n)
	}
	lens := tr.lens[:n]
	for i := range fields {
		if _, err := io.ReadFull(tr.r, b[:]); err != nil {
			return false, err
		}
		l := int32(binary.BigEndian.Uint32(b[:]))
		lens[i] = l
		if l < 0 {
			continue
		}
		start := len(tr.arena)
		tr.arena = append(tr.arena, make([]byte, l)...) // no allocation once the arena is grown
		if _, err := io.ReadFull(tr.r, tr.arena[start:]); err != nil {
			return false, err
		}
	}
	off := 0
	for i, l := range lens {
		if l < 0 {
			fields[i] = nil
			continue
		}
		fields[i] = tr.arena[off : off+int(l) : off+int(l)]
		off += int(l)
	}
	return true, nil
}

// tupleWriter writes PostgreSQL's binary COPY format.
type tupleWriter struct {
	w *bufio.Writer
}

func newTupleWriter(w io.Writer) (*tupleWriter, error) {
	tw := &tupleWriter{w: bufio.NewWriterSize(w, 1<<16)}
	tw.w.Write(copySignature)
	_, err := tw.w.Write(make([]byte, 8)) // flags, header extension length
	return tw, err
}

func (tw *tupleWriter) write(fields [][]byte) error {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:2], uint16(len(fields)))
	tw.w.Write(b[:2])
	for _, f := range fields {
		if f == nil {
			binary.BigEndian.PutUint32(b[:], 0xffffffff)
			tw.w.Write(b[:])
			continue
		}
		binary.BigEndian.PutUint32(b[:], uint32(len(f)))
		tw.w.Write(b[:])
		if _, err := tw.w.Write(f); err != nil {
			return err
		}
	}
	return nil
}

func (tw *tupleWriter) close() error {
	tw.w.Write([]byte{0xff, 0xff})
	return tw.w.Flush()
}

// chunkSize is how many bytes of whole tuples travel together from a
// transformer to the writer.
const chunkSize = 64 << 10

// appendTuple appends one tuple in binary COPY form.
func appendTuple(b []byte, fields [][]byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(fields)))
	for _, f := range fields {
		if f == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// chunks carries whole-tuple chunks from the transformers of one table to
// its COPY FROM, which reads them as one binary COPY stream (header,
// tuples, trailer). At most n buffers exist: memory stays bounded however
// far the writer falls behind.
type chunks struct {
	ctx   context.Context
	full  chan []byte
	free  chan []byte
	cur   []byte
	off   int
	ended bool // the trailer is out
}

func newChunks(ctx context.Context, n int) *chunks {
	c := &chunks{ctx: ctx, full: make(chan []byte, n), free: make(chan []byte, n)}
	for i := 0; i < n; i++ {
		c.free <- nil
	}
	hdr := append(append([]byte{}, copySignature...), 0, 0, 0, 0, 0, 0, 0, 0)
	c.cur = hdr
	return c
}

// get is an empty buffer, waiting for the writer to return one.
func (c *chunks) get() ([]byte, error) {
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case b := <-c.free:
		if b == nil {
			b = make([]byte, 0, chunkSize+chunkSize/4)
		}
		return b[:0], nil
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
}

// put hands a filled buffer to the writer.
func (c *chunks) put(b []byte) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	select {
	case c.full <- b:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// close ends the stream once every transformer is done.
func (c *chunks) close() { close(c.full) }

// Read is the writer's side: the header, every chunk, the trailer.
func (c *chunks) Read(p []byte) (int, error) {
	for c.off == len(c.cur) {
		if cap(c.cur) >= chunkSize {
			c.free <- c.cur // never blocks: it came from free
		}
		c.cur, c.off = nil, 0
		if c.ended {
			return 0, io.EOF
		}
		select {
		case b, ok := <-c.full:
			if !ok {
				if err := c.ctx.Err(); err != nil {
					return 0, err
				}
				c.cur, c.ended = []byte{0xff, 0xff}, true
				continue
			}
			c.cur = b
		case <-c.ctx.Done():
			return 0, c.ctx.Err()
		}
	}
	n := copy(p, c.cur[c.off:])
	c.off += n
	return n, nil
}
