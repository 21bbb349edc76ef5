package data

import (
	"bufio"
	"bytes"
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
	lens := make([]int32, n)
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
		tr.arena = append(tr.arena, make([]byte, l)...)
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
