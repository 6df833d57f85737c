package main

import (
	"fmt"

	"github.com/fwslot/fwslot/fleet/sign"
	"github.com/spf13/cobra"
)

func newFleetKeygen(g *globals) *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "keygen --out PREFIX",
		Short: "Make the ed25519 key pair that signs fleet versions",
		Long: `Write a new ed25519 key pair: PREFIX.key (private, PEM PKCS#8, mode 0600)
for the pusher (fwslot fleet push --sign-key PREFIX.key) and PREFIX.pub
(public, PEM PKIX) for every agent (fwslot agent --trust-key PREFIX.pub).
An agent with --trust-key refuses versions the private key did not sign, so
whoever controls etcd alone cannot push a ruleset. Existing files are never
overwritten.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if prefix == "" {
				return usagef("fleet keygen needs --out PREFIX (writes PREFIX.key and PREFIX.pub)")
			}
			pub, priv, err := sign.GenerateKey()
			if err != nil {
				return err
			}
			keyPath, pubPath, err := sign.WriteKeys(prefix, priv)
			if err != nil {
				return usageError{err}
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"private": keyPath, "public": pubPath, "fingerprint": sign.Fingerprint(pub)})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "private key %s: keep it with the pusher (fleet push --sign-key)\npublic key  %s: give it to every agent (agent --trust-key)\nfingerprint %s\n", keyPath, pubPath, sign.Fingerprint(pub))
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "out", "", "path prefix of the key files: PREFIX.key and PREFIX.pub")
	return cmd
}
