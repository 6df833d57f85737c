package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// chunkSize is the largest chunk a version's source is split into: well
// below etcd's default request limit of 1.5 MiB.
const chunkSize = 512 << 10

// DefaultKeepVersions is how many versions a group keeps in etcd.
const DefaultKeepVersions = 20

// ErrCorrupt means a chunk or a version in etcd does not match its hash.
var ErrCorrupt = errors.New("fleet data does not match its hash")

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// putChunks writes the chunks of src (each once: a chunk that exists is
// left alone, it holds the same bytes) and returns their hashes. A new
// chunk is written with its tracked key (chunkgc.go).
func putChunks(ctx context.Context, c *clientv3.Client, k Keys, src []byte) ([]string, error) {
	var hashes []string
	for off := 0; off < len(src) || off == 0; off += chunkSize {
		end := min(off+chunkSize, len(src))
		part := src[off:end]
		h := sum(part)
		key := k.Chunk(h)
		r, err := c.Get(ctx, key, clientv3.WithCountOnly())
		if err != nil {
			return nil, fmt.Errorf("look up chunk %s: %w", h[:12], err)
		}
		if r.Count > 0 {
			hashes = append(hashes, h)
			if end == len(src) {
				break
			}
			continue
		}
		_, err = c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(part)), clientv3.OpPut(k.ChunkTracked(h), "")).Commit()
		if err != nil {
			return nil, fmt.Errorf("store chunk %s: %w", h[:12], err)
		}
		hashes = append(hashes, h)
		if end == len(src) {
			break
		}
	}
	return hashes, nil
}

// putVersion stores src as the group's next version and returns it. It
// keeps the newest keep versions of the group (0: DefaultKeepVersions)
// and then deletes the chunks no kept version of any group uses
// (chunkgc.go). The version is written in one transaction with a
// reference key per chunk, and only while every chunk still exists: a
// chunk deleted since putChunks wrote it is written again. An error
// wrapping errChunksLeft means the version was stored but some unused
// chunks could not be deleted.
// beforeTxn, when set, runs between writing the chunks and the version's
// transaction (tests race a deletion there).
func putVersion(ctx context.Context, c *clientv3.Client, k Keys, src []byte, meta VersionMeta, keep int, beforeTxn func()) (VersionMeta, error) {
	if keep <= 0 {
		keep = DefaultKeepVersions
	}
	meta.Hash, meta.Size = sum(src), len(src)
	for {
		chunks, err := putChunks(ctx, c, k, src)
		if err != nil {
			return meta, err
		}
		meta.Chunks = chunks
		r, err := c.Get(ctx, k.seqKey())
		if err != nil {
			return meta, fmt.Errorf("read version number of group %s: %w", k.Group, err)
		}
		var n uint64
		var rev int64
		if len(r.Kvs) == 1 {
			if n, err = strconv.ParseUint(string(r.Kvs[0].Value), 10, 64); err != nil {
				return meta, fmt.Errorf("%w: version number of group %s: %q", ErrCorrupt, k.Group, r.Kvs[0].Value)
			}
			rev = r.Kvs[0].ModRevision
		}
		meta.Version = n + 1
		b, err := json.Marshal(meta)
		if err != nil {
			return meta, err
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k.seqKey()), "=", rev)}
		ops := []clientv3.Op{clientv3.OpPut(k.seqKey(), strconv.FormatUint(meta.Version, 10)), clientv3.OpPut(k.Version(meta.Version), string(b))}
		for _, h := range uniq(chunks) {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k.Chunk(h)), ">", 0))
			ops = append(ops, clientv3.OpPut(k.ChunkRef(h, meta.Version), ""))
		}
		var pruned []string
		if meta.Version > uint64(keep) {
			// The versions older than the kept ones go, with their
			// reference keys. seq's compare covers them: only a
			// transaction that moves seq writes or deletes versions.
			var pops []clientv3.Op
			if pops, pruned, err = pruneOps(ctx, c, k, meta.Version-uint64(keep)+1); err != nil {
				return meta, err
			}
			ops = append(ops, pops...)
		}
		if beforeTxn != nil {
			beforeTxn()
		}
		t, err := c.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return meta, fmt.Errorf("store version of group %s: %w", k.Group, err)
		}
		if t.Succeeded {
			return meta, collectChunks(ctx, c, k, pruned, chunks)
		}
		// Another push moved seq, or a chunk was deleted meanwhile.
	}
}

func uniq(hs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range hs {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// GetMeta reads version n of the group.
func GetMeta(ctx context.Context, c *clientv3.Client, k Keys, n uint64) (VersionMeta, error) {
	var m VersionMeta
	r, err := c.Get(ctx, k.Version(n))
	if err != nil {
		return m, fmt.Errorf("read version %d of group %s: %w", n, k.Group, err)
	}
	if len(r.Kvs) == 0 {
		return m, fmt.Errorf("version %d of group %s is not in etcd (only the newest are kept)", n, k.Group)
	}
	if err := json.Unmarshal(r.Kvs[0].Value, &m); err != nil {
		return m, fmt.Errorf("%w: version %d of group %s: %v", ErrCorrupt, n, k.Group, err)
	}
	return m, nil
}

// getVersion reads version n with its source, verifying every chunk and
// the whole against their hashes.
func getVersion(ctx context.Context, c *clientv3.Client, k Keys, n uint64) (*Version, error) {
	m, err := GetMeta(ctx, c, k, n)
	if err != nil {
		return nil, err
	}
	src := make([]byte, 0, m.Size)
	for _, h := range m.Chunks {
		r, err := c.Get(ctx, k.Chunk(h))
		if err != nil {
			return nil, fmt.Errorf("read chunk %s of version %d: %w", h[:min(12, len(h))], n, err)
		}
		if len(r.Kvs) == 0 {
			return nil, fmt.Errorf("%w: chunk %s of version %d is missing", ErrCorrupt, h, n)
		}
		if got := sum(r.Kvs[0].Value); got != h {
			return nil, fmt.Errorf("%w: chunk %s of version %d hashes to %s", ErrCorrupt, h, n, got)
		}
		src = append(src, r.Kvs[0].Value...)
	}
	if got := sum(src); got != m.Hash {
		return nil, fmt.Errorf("%w: version %d of group %s hashes to %s, not %s", ErrCorrupt, n, k.Group, got, m.Hash)
	}
	return &Version{VersionMeta: m, Source: string(src)}, nil
}

// getJSON reads key into v; found is false when the key does not exist.
// It returns the key's ModRevision (0 when absent) for compare-and-swap.
func getJSON(ctx context.Context, c *clientv3.Client, key string, v any) (rev int64, found bool, err error) {
	r, err := c.Get(ctx, key)
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", key, err)
	}
	if len(r.Kvs) == 0 {
		return 0, false, nil
	}
	if err := json.Unmarshal(r.Kvs[0].Value, v); err != nil {
		return 0, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
	}
	return r.Kvs[0].ModRevision, true, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return string(b)
}
