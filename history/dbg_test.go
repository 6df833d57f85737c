package history

import (
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

func TestDbgLevels(t *testing.T) {
	for _, db := range []string{"/tmp/sh/db/rules100k.db", "/tmp/sh/db/bigset.db"} {
		s, err := Open(db, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		var raw [][]byte
		s.view(func(tx *bolt.Tx) error {
			b, _ := openBlobs(tx, &s.codec, false)
			return b.refs.ForEach(func(k, v []byte) error {
				var bk blobKey
				copy(bk[:], k)
				if val := b.value(bk); val[0] == blobZstd {
					c, err := b.get(bk)
					raw = append(raw, c)
					return err
				}
				return nil
			})
		})
		s.Close()
		for _, lvl := range []zstd.EncoderLevel{zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression} {
			enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(lvl))
			st := time.Now()
			tot, in := 0, 0
			for _, r := range raw {
				tot += len(enc.EncodeAll(r, nil))
				in += len(r)
			}
			t.Logf("%s level %v: %d -> %d in %v", db, lvl, in, tot, time.Since(st))
		}
	}
}
