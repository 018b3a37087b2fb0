package file

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/keyward/keyward/watermark"
)

// The background signature writer: SetSignature keeps a mark's signature in
// memory and hands it here; one goroutine per entry copies the newest one to
// the entry's .sig file, without fsync, off the request path.

// sigDelay is how long a background writer waits before writing the newest
// signature of an entry.
const sigDelay = 200 * time.Millisecond

// pendingSig is a signature waiting for the background writer (encoded
// there, off the request path).
type pendingSig struct {
	id   watermark.ID
	mark watermark.Mark
}

// queueSig hands p to e's background signature writer, starting it when
// none runs. Only the newest pending signature is written.
func (s *Store) queueSig(e *entry, p *pendingSig) {
	e.mu.Lock()
	e.sigPending = p
	start := !e.sigWriting
	e.sigWriting = true
	e.mu.Unlock()
	if !start {
		return
	}
	s.sigWriters.Add(1)
	go func() {
		defer s.sigWriters.Done()
		// Coalesce: under load a key signs many marks a second, and only
		// the newest signature is worth keeping. Close cuts the wait short.
		select {
		case <-time.After(sigDelay):
		case <-s.closing:
		}
		for {
			e.mu.Lock()
			p := e.sigPending
			e.sigPending = nil
			if p == nil {
				e.sigWriting = false
				e.mu.Unlock()
				return
			}
			e.mu.Unlock()
			_ = overwrite(filepath.Join(s.dir, e.base+sigSuffix), encodeRecord(p.id, p.mark, true))
		}
	}()
}

// flushSigs waits until every queued signature record has been written.
func (s *Store) flushSigs() { s.sigWriters.Wait() }

// overwrite writes data over the start of the file at path and cuts it to
// len(data), without fsync. It never truncates to zero first: on ext4 that
// pattern (like O_TRUNC) forces a data flush on close, which made
// SetSignature cost tens of milliseconds. A crash mid-write leaves a file
// whose checksum fails, which load ignores.
func overwrite(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt(data, 0)
	var terr error
	if werr == nil {
		if fi, err := f.Stat(); err != nil {
			terr = err
		} else if fi.Size() > int64(len(data)) {
			terr = f.Truncate(int64(len(data)))
		}
	}
	return errors.Join(werr, terr, f.Close())
}
