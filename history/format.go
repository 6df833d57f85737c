package history

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Stored values and their format.
//
// Every value fwslot stores for a target (a version's metadata, its
// source document, its compiled form, an activation, the kernel record)
// begins with one byte, valueFormat, telling how the rest is encoded, so
// that a later fwslot can change one kind of record and still read the
// old ones. Keys, the hash index (a version number) and the meta bucket
// (schema, identity) carry no marker.
//
// Schema 1 files, written before the marker existed, hold the same
// values without it. They are read as they are (a JSON value starts with
// '{', never with a format byte) until the first write transaction, which
// migrates them: it marks every compiled form (the one kind that cannot
// be told apart by its first byte) and sets the schema to 2, in the same
// commit as the write itself. JSON values stay readable in both forms.
// A schema 2 file is refused by an fwslot that only knows schema 1.
const valueFormat byte = 1

// schemaUnmarked is the schema of files whose values carry no format byte.
const schemaUnmarked = 1

// seal prefixes a payload with the format byte.
func seal(payload []byte) []byte {
	out := make([]byte, 1+len(payload))
	out[0] = valueFormat
	copy(out[1:], payload)
	return out
}

// unseal returns the payload of a marked value.
func unseal(data []byte) ([]byte, error) {
	switch {
	case len(data) == 0:
		return nil, fmt.Errorf("value has no format byte")
	case data[0] == valueFormat:
		return data[1:], nil
	case data[0] > valueFormat:
		return nil, fmt.Errorf("value has format %d, this fwslot reads up to %d; use a newer fwslot", data[0], valueFormat)
	}
	return nil, fmt.Errorf("value has unknown format %d", data[0])
}

// encodeJSON returns v as a marked JSON value.
func encodeJSON(v any) ([]byte, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return seal(payload), nil
}

// decodeJSON decodes a JSON value, marked or written before markers.
func decodeJSON(data []byte, v any) error {
	payload := data
	if len(data) == 0 || data[0] != '{' {
		var err error
		if payload, err = unseal(data); err != nil {
			return err
		}
	}
	return json.Unmarshal(payload, v)
}

// schemaOf returns the schema of the file as tx sees it (0 for a file
// with no meta bucket yet).
func schemaOf(tx *bolt.Tx) uint64 {
	mb := tx.Bucket(bucketMeta)
	if mb == nil {
		return 0
	}
	v := mb.Get(keySchema)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// decodeCompiled returns the compiled form in a stored value: marked from
// schema 2 on, as is in a schema 1 file.
func decodeCompiled(tx *bolt.Tx, data []byte) ([]byte, error) {
	if schemaOf(tx) <= schemaUnmarked {
		return data, nil
	}
	out, err := unseal(data)
	if err != nil {
		return nil, fmt.Errorf("compiled form: %w", err)
	}
	return out, nil
}

// migrate brings an older file to the current schema inside the write
// transaction tx. Schema 1: it marks every compiled form. Schema 2 needs
// nothing: its values stay as they are and are read as before (stream.go);
// versions stored from now on are chunked. Then it records the schema. A
// file of the current schema (or a fresh one) is left alone.
func migrate(tx *bolt.Tx) error {
	switch schemaOf(tx) {
	case 0, schemaVersion:
		return nil
	case schemaUnmarked:
		if err := markCompiled(tx); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchema, u64(schemaVersion))
}

// markCompiled prefixes every compiled form of a schema 1 file with the
// format byte.
func markCompiled(tx *bolt.Tx) error {
	if tb := tx.Bucket(bucketTargets); tb != nil {
		targets, err := bucketKeys(tb)
		if err != nil {
			return err
		}
		for _, name := range targets {
			cb := sub(tb.Bucket(name), bucketCompiled)
			if cb == nil {
				continue
			}
			// Keys first: a bucket must not change under ForEach.
			keys, err := bucketKeys(cb)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := cb.Put(k, seal(cb.Get(k))); err != nil {
					return fmt.Errorf("migrate compiled form of %s key %x: %w", name, k, err)
				}
			}
		}
	}
	return nil
}

// bucketKeys returns copies of b's keys, for a caller that changes b.
func bucketKeys(b *bolt.Bucket) ([][]byte, error) {
	var keys [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	})
	return keys, err
}
