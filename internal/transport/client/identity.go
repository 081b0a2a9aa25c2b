package client

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Files of a saved identity.
const (
	keyFile  = "agent.key" // PKCS#8 PEM, 0600
	certFile = "agent.crt" // PEM, 0644
	caFile   = "ca.crt"    // PEM, 0644
	// actionKeyFile is the server's Ed25519 key for response commands
	// (PEM PUBLIC KEY, 0644), absent for identities from servers without
	// actions.
	actionKeyFile = "action.pub"
)

// Identity is an enrolled agent: its id, private key, certificate and the
// server's CA. The id is the certificate's CommonName.
type Identity struct {
	AgentID string
	Key     *ecdsa.PrivateKey
	Cert    *x509.Certificate
	CA      *x509.Certificate
	// ActionKey verifies the server's response commands; nil when the
	// server sent none.
	ActionKey ed25519.PublicKey
}

func (id *Identity) check() error {
	if id == nil || id.Key == nil || id.Cert == nil || id.CA == nil {
		return errors.New("client: incomplete identity")
	}
	if id.Cert.Subject.CommonName != id.AgentID || id.AgentID == "" {
		return fmt.Errorf("client: certificate names %q, not agent %q", id.Cert.Subject.CommonName, id.AgentID)
	}
	if !id.Key.PublicKey.Equal(id.Cert.PublicKey) {
		return errors.New("client: certificate is not for the identity's key")
	}
	if err := id.Cert.CheckSignatureFrom(id.CA); err != nil {
		return fmt.Errorf("client: certificate not signed by the CA: %w", err)
	}
	if !slices.Contains(id.Cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return errors.New("client: certificate is not for client authentication")
	}
	return nil
}

// Save writes the identity into dir (created 0700): the key 0600, the
// certificates 0644. Each file is replaced atomically; the certificate is
// written last, so a crash leaves either the old identity or a new key
// without its certificate, which LoadIdentity refuses.
func (id *Identity) Save(dir string) error {
	if err := id.check(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return fmt.Errorf("client: marshal key: %w", err)
	}
	files := []struct {
		name string
		typ  string
		der  []byte
		mode os.FileMode
	}{
		{caFile, "CERTIFICATE", id.CA.Raw, 0o644},
		{keyFile, "PRIVATE KEY", der, 0o600},
		{certFile, "CERTIFICATE", id.Cert.Raw, 0o644},
	}
	if len(id.ActionKey) == ed25519.PublicKeySize {
		pk, err := x509.MarshalPKIXPublicKey(id.ActionKey)
		if err != nil {
			return fmt.Errorf("client: marshal action key: %w", err)
		}
		// Before the certificate, which is written last.
		files = append([]struct {
			name string
			typ  string
			der  []byte
			mode os.FileMode
		}{{actionKeyFile, "PUBLIC KEY", pk, 0o644}}, files...)
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// LoadIdentity reads an identity written by Save and checks that key,
// certificate and CA belong together.
func LoadIdentity(dir string) (*Identity, error) {
	read := func(name, typ string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != typ {
			return nil, fmt.Errorf("client: %s is not PEM %s", name, typ)
		}
		return blk.Bytes, nil
	}
	keyDER, err := read(keyFile, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	certDER, err := read(certFile, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	caDER, err := read(caFile, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, errors.New("client: agent.key does not parse as PKCS#8")
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("client: agent.key is not an ECDSA key")
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("client: agent.crt: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("client: ca.crt: %w", err)
	}
	id := &Identity{AgentID: cert.Subject.CommonName, Key: key, Cert: cert, CA: ca}
	if akDER, err := read(actionKeyFile, "PUBLIC KEY"); err == nil {
		pk, err := x509.ParsePKIXPublicKey(akDER)
		ak, ok := pk.(ed25519.PublicKey)
		if err != nil || !ok {
			return nil, errors.New("client: action.pub is not an Ed25519 public key")
		}
		id.ActionKey = ak
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := id.check(); err != nil {
		return nil, err
	}
	return id, nil
}

// writeFile replaces path atomically with data and mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("client: write %s: %w", path, err)
	}
	return nil
}
