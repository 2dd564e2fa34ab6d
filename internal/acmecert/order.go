package acmecert

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/acme"
)

// Obtain runs one ACME order for the names (RFC 8555 §7.4): the account
// (registered, or found by its key), an authorization per name validated
// by the configured challenge, finalization with a CSR of the kept
// certificate key, and the chain, stored in Dir before it is returned.
// A new acme.Client each time: a CA that lost the account (or a new
// directory) is met with a new registration.
func (m *Manager) Obtain(ctx context.Context) (*tls.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, orderTimeout)
	defer cancel()
	f := m.files()
	accountKey, err := f.key(AccountKeyFile)
	if err != nil {
		return nil, err
	}
	certKey, err := f.key(KeyFile)
	if err != nil {
		return nil, err
	}
	client := &acme.Client{Key: accountKey, DirectoryURL: m.opts.Directory, HTTPClient: m.opts.HTTPClient, UserAgent: "smtpkit"}
	if err := m.account(ctx, client); err != nil {
		return nil, err
	}
	order, err := client.AuthorizeOrder(ctx, acme.DomainIDs(m.opts.Names...))
	if err != nil {
		return nil, fmt.Errorf("acme: new order: %w", err)
	}
	if err := m.authorize(ctx, client, order); err != nil {
		return nil, err
	}
	ready, err := client.WaitOrder(ctx, order.URI)
	if err != nil {
		return nil, fmt.Errorf("acme: order: %w", err)
	}
	if ready.URI == "" { // a polled order has no Location
		ready.URI = order.URI
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: m.opts.Names[0]},
		DNSNames: m.opts.Names,
	}, certKey)
	if err != nil {
		return nil, fmt.Errorf("acme: CSR: %w", err)
	}
	chain, _, err := client.CreateCertFromOrder(ctx, ready, csr, true)
	if err != nil {
		return nil, fmt.Errorf("acme: finalize: %w", err)
	}
	c, err := certificate(chain, certKey, m.opts.Names)
	if err != nil {
		return nil, err
	}
	if err := f.saveCert(chain, m.opts.Directory); err != nil {
		return nil, err
	}
	return c, nil
}

// account registers the account key (RFC 8555 §7.3), or finds the
// account it already has and updates its contact when acme.email changed
// (§7.3.2).
func (m *Manager) account(ctx context.Context, client *acme.Client) error {
	var contact []string
	if m.opts.Email != "" {
		contact = []string{"mailto:" + m.opts.Email}
	}
	_, err := client.Register(ctx, &acme.Account{Contact: contact}, acme.AcceptTOS)
	if err == nil {
		return nil
	}
	if !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return fmt.Errorf("acme: account: %w", err)
	}
	acct, err := client.GetReg(ctx, "")
	if err != nil {
		return fmt.Errorf("acme: account: %w", err)
	}
	if !slices.Equal(acct.Contact, contact) {
		if contact == nil {
			contact = []string{} // an empty list removes the contact
		}
		acct.Contact = contact
		if _, err := client.UpdateReg(ctx, acct); err != nil {
			return fmt.Errorf("acme: account contact: %w", err)
		}
		m.log.Info("acme: account contact updated", "contact", strings.Join(contact, ","))
	}
	return nil
}

// authorize validates every pending authorization of order with the
// configured challenge, on a listener bound for as long as that takes.
func (m *Manager) authorize(ctx context.Context, client *acme.Client, order *acme.Order) error {
	r := newResponder()
	var pending []*acme.Challenge
	var urls []string
	for _, u := range order.AuthzURLs {
		z, err := client.GetAuthorization(ctx, u)
		if err != nil {
			return fmt.Errorf("acme: authorization: %w", err)
		}
		if z.Status == acme.StatusValid {
			continue // still valid from an earlier order (RFC 8555 §7.1.4)
		}
		i := slices.IndexFunc(z.Challenges, func(c *acme.Challenge) bool { return c.Type == m.opts.Challenge })
		if i < 0 {
			return fmt.Errorf("acme: the CA offers no %s challenge for %s", m.opts.Challenge, z.Identifier.Value)
		}
		chal := z.Challenges[i]
		switch m.opts.Challenge {
		case HTTP01:
			ka, err := client.HTTP01ChallengeResponse(chal.Token)
			if err != nil {
				return fmt.Errorf("acme: %w", err)
			}
			r.addToken(chal.Token, ka)
		default:
			c, err := client.TLSALPN01ChallengeCert(chal.Token, z.Identifier.Value)
			if err != nil {
				return fmt.Errorf("acme: %w", err)
			}
			r.addCert(z.Identifier.Value, &c)
		}
		pending = append(pending, chal)
		urls = append(urls, z.URI)
	}
	if len(pending) == 0 {
		return nil
	}
	stop, err := r.listen(m.opts.Challenge, m.opts.ChallengeAddress)
	if err != nil {
		return err
	}
	defer stop()
	for _, chal := range pending {
		if _, err := client.Accept(ctx, chal); err != nil {
			return fmt.Errorf("acme: %s challenge: %w", m.opts.Challenge, err)
		}
	}
	for _, u := range urls {
		if _, err := client.WaitAuthorization(ctx, u); err != nil {
			return fmt.Errorf("acme: %s validation: %w", m.opts.Challenge, err)
		}
	}
	return nil
}

// certificate builds the served certificate from the issued chain,
// checking that it is for key and names.
func certificate(chain [][]byte, key crypto.Signer, names []string) (*tls.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("acme: the CA returned no certificate")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("acme: issued certificate: %w", err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return nil, errors.New("acme: the issued certificate is not for our key")
	}
	if err := covers(leaf, names); err != nil {
		return nil, fmt.Errorf("acme: issued %w", err)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}
