package fleet

// Deleting the chunks no version uses. Chunks are content-addressed and
// shared by every group, so a chunk of a pruned version may still be used
// by another group's version, or by a push that wrote it and has not yet
// written its version. Every use is a reference key,
// P/chunks/<sha256>/refs/<group>/<version>, written in the transaction
// that writes the version and deleted in the one that prunes it. A chunk
// goes only in a transaction that compares that no reference key exists;
// the version's transaction compares that each of its chunks exists. The
// two transactions are serialized by etcd, so either the version comes
// first (its reference keeps the chunk) or the deletion does (the push
// finds the chunk gone and writes it again). Chunks stored before
// reference keys existed have no tracked key and are never deleted: a
// version written then uses them without saying so.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// errChunksLeft means a version was stored, but chunks no version uses
// any more could not be deleted (they stay in etcd).
var errChunksLeft = errors.New("unused chunks left in etcd")

// maxPruneRefs bounds the reference keys one push deletes with the
// versions it prunes: etcd limits a transaction to 128 operations by
// default. Versions beyond it are pruned by the next pushes.
const maxPruneRefs = 64

// pruneOps returns the operations that delete the group's versions older
// than version below, oldest first (at least one, then as many as fit
// maxPruneRefs), with their reference keys, and the chunks they used.
func pruneOps(ctx context.Context, c *clientv3.Client, k Keys, below uint64) (ops []clientv3.Op, chunks []string, err error) {
	r, err := c.Get(ctx, k.versions(), clientv3.WithRange(k.Version(below)))
	if err != nil {
		return nil, nil, fmt.Errorf("read the versions of group %s to prune: %w", k.Group, err)
	}
	refs := 0
	for _, kv := range r.Kvs {
		var m VersionMeta
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, kv.Key, err)
		}
		hs := uniq(m.Chunks)
		if len(ops) > 0 && refs+len(hs) > maxPruneRefs {
			break
		}
		ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		for _, h := range hs {
			ops = append(ops, clientv3.OpDelete(k.ChunkRef(h, m.Version)))
		}
		refs += len(hs)
		chunks = append(chunks, hs...)
	}
	return ops, uniq(chunks), nil
}

// collectChunks deletes each chunk of candidates that keep does not list,
// when it is tracked and no reference key names it, in one transaction
// per chunk.
func collectChunks(ctx context.Context, c *clientv3.Client, k Keys, candidates, keep []string) error {
	kept := map[string]bool{}
	for _, h := range keep {
		kept[h] = true
	}
	var errs []error
	for _, h := range candidates {
		if kept[h] {
			continue
		}
		if _, err := deleteChunk(ctx, c, k, h); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", errChunksLeft, errors.Join(errs...))
	}
	return nil
}

// deleteChunk deletes chunk h and its tracked key if it is tracked and
// no reference key exists, in one transaction; deleted says it did.
func deleteChunk(ctx context.Context, c *clientv3.Client, k Keys, h string) (deleted bool, err error) {
	t, err := c.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(k.ChunkTracked(h)), ">", 0),
		// A range compare: true only when no key has the prefix.
		clientv3.Compare(clientv3.CreateRevision(k.chunkRefs(h)), "=", 0).WithPrefix(),
	).Then(clientv3.OpDelete(k.Chunk(h)), clientv3.OpDelete(k.ChunkTracked(h))).Commit()
	if err != nil {
		return false, fmt.Errorf("delete unused chunk %s: %w", h[:min(12, len(h))], err)
	}
	return t.Succeeded, nil
}
