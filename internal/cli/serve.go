package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"smtpkit/internal/certs"
	"smtpkit/internal/config"
	"smtpkit/internal/control"
	"smtpkit/internal/greylist"
	"smtpkit/internal/inbound"
	"smtpkit/internal/local"
	"smtpkit/internal/maildir"
	"smtpkit/internal/metrics"
	"smtpkit/internal/sendlimit"
	"smtpkit/internal/server"
	"smtpkit/internal/userdb"
	"smtpkit/internal/vfs"
	"smtpkit/internal/wal"
)

// runServe is `smtpkit serve [-config FILE]`: it runs the server until
// SIGTERM or SIGINT, reloading configuration and certificates on SIGHUP.
//
// "ready" (stdout and READY=1) means ready: the signal handlers are
// installed first, before anything that can take time, so a signal during
// start-up waits until start-up is done instead of killing the process;
// then the stores are opened (journal replay), the control socket and the
// listeners are bound and served, and only then is ready said.
func runServe(args []string, stdio Stdio) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	configPath := fs.String("config", "", "config file (default "+DefaultConfigPath+", or the built-in development default when it does not exist)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	cfg, source, err := resolveConfig(*configPath, stdio.Err)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit serve: %v\n", err)
		return 1
	}
	log := newLogger(stdio.Err, cfg.Log)
	log.Info("configuration", "source", source)
	d, err := wireServer(cfg, log)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit serve: %v\n", err)
		return 1
	}
	ctl, err := listenControl(cfg.DataDir, vfs.OS{}, log)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit serve: %v\n", err)
		return 1
	}
	if err := d.srv.Listen(); err != nil {
		if ctl != nil {
			ctl.Close()
		}
		fmt.Fprintf(stdio.Err, "smtpkit serve: %v\n", err)
		return 1
	}
	endpoint, err := startHTTP(httpOptions{Address: cfg.HTTPAddress(), PProf: cfg.HTTP.PProf, Status: d.statusPage(cfg, log)}, d.metrics, d.health, log)
	if err != nil {
		if ctl != nil {
			ctl.Close()
		}
		fmt.Fprintf(stdio.Err, "smtpkit serve: %v\n", err)
		return 1
	}
	defer endpoint.Close()
	go func() {
		// Leftovers of deliveries cut short by a crash (qmail's 36-hour rule).
		if n, err := maildir.CleanTmp(filepath.Join(cfg.DataDir, "mail"), maildir.TmpMaxAge, time.Now()); err != nil || n > 0 {
			log.Info("maildir tmp/ cleanup", "removed", n, "err", err)
		}
	}()

	served := make(chan error, 1)
	go func() { served <- d.health.run("smtp", d.srv.Serve) }()
	defer d.startBackground(ctl, log)()

	printListeners(stdio.Out, cfg, d)
	fmt.Fprintln(stdio.Out, "smtpkit: ready")
	notify := newNotifier(os.Getenv("NOTIFY_SOCKET"), log)
	notify.ready()
	return d.handleSignals(sigs, served, *configPath, notify, log)
}

// startBackground runs the queue and, when it was bound, the control
// socket. The function it returns stops them and closes the stores.
func (d *daemon) startBackground(ctl *control.Listener, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Add(1)
	go func() {
		defer background.Done()
		if err := d.health.run("queue", func() error { return d.out.queue.Run(ctx) }); err != nil {
			log.Error("queue stopped", "err", err)
		}
	}()
	if sts := d.out.sts; sts != nil {
		background.Add(1)
		go func() {
			defer background.Done()
			refreshSTS(ctx, sts)
		}()
	}
	background.Add(1)
	go func() { defer background.Done(); d.reports.run(ctx) }()
	background.Add(1)
	go func() { defer background.Done(); d.dmarc.run(ctx) }()
	if ctl != nil {
		background.Add(1)
		go func() {
			defer background.Done()
			var h control.Handler = queueHandler{q: d.out.queue, log: log}
			h = tlsrptControl{next: h, reports: d.reports, log: log}
			h = dmarcControl{next: h, reports: d.dmarc, log: log}
			if err := ctl.Serve(ctx, h); err != nil {
				log.Error("control socket stopped", "err", err)
			}
		}()
	}
	return func() {
		cancel()
		background.Wait()
		if d.stopACME != nil {
			d.stopACME()
		}
		d.out.queue.Close()
		d.out.remote.Close()
		d.reports.close(log)
		d.dmarc.close(log)
		closeGreylist(d.greylist, log)
		closeAccountLimits(d.sendLimits, log)
		if err := d.writer.CloseJournal(); err != nil {
			log.Error("journal checkpoint at shutdown", "err", err)
		}
	}
}

// handleSignals serves until SIGTERM or SIGINT (a graceful shutdown within
// limits.shutdown_grace, as the last reload left it) or the SMTP server
// stopping, reloading on SIGHUP; it returns serve's exit code.
func (d *daemon) handleSignals(sigs <-chan os.Signal, served <-chan error, configPath string, notify *notifier, log *slog.Logger) int {
	for {
		select {
		case err := <-served:
			if err != nil {
				log.Error("server stopped", "err", err)
				return 1
			}
			return 0
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				notify.reloading()
				d.reload(configPath, log)
				notify.ready()
				continue
			}
			notify.stopping()
			grace := d.cfg.Limits.ShutdownGrace
			log.Info("shutting down", "signal", sig.String(), "grace", grace.String())
			ctx, cancel := context.WithTimeout(context.Background(), grace.D())
			d.srv.Shutdown(ctx)
			cancel()
			<-served
			log.Info("stopped")
			return 0
		}
	}
}

// daemon is the wired server and what SIGHUP reloads.
type daemon struct {
	cfg      config.Config // the configuration in force
	srv      *server.Server
	local    *local.Store // local delivery: the local domains and their Maildirs
	out      *outbound
	metrics  *metrics.Metrics // also the server's Observer and the courier's counter
	health   *health          // what /healthz reports
	certs    *certs.Store
	selfSign bool
	stopACME func()          // ends the ACME renewals (acme.go); nil without [acme]
	writer   *maildir.Writer // Maildir delivery: names, group commit, journal
	accounts *userdb.File    // re-read on SIGHUP too, to log a file it cannot load
	reports  *reports        // TLS-RPT counters and reporter (tlsrpt.go); nil when [tlsrpt] is off
	dmarc    *dmarcReports   // DMARC report rows and reporter (dmarc.go); nil when [dmarc_reports] is off
	greylist *greylist.List  // greylist.go; nil when [greylist] is off
	// sendLimits counts what each account sends ([account_limits], accountlimits.go)
	sendLimits *sendlimit.Store
}

// openMaildirs sets up Maildir delivery in mode, the maildir.sync mode
// checkStorage found the file systems can keep. It first replays what an
// earlier run left in <data_dir>/journal (in every mode: the journal may
// be from a run in another one), so that every message acknowledged
// before a crash is in its Maildir before new mail is accepted.
func openMaildirs(cfg config.Config, mode maildir.Sync, log *slog.Logger) (*maildir.Writer, error) {
	writer := maildir.NewWriter(nil)
	writer.SetSync(mode)
	dir := filepath.Join(cfg.DataDir, "journal")
	if mode != maildir.SyncJournal {
		// A journal an earlier run left (maildir.sync was "journal", or
		// checkStorage did not fall back then) still holds acknowledged
		// messages: replay it before running without one.
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return writer, nil
		} else if err != nil {
			return nil, err
		}
	}
	jl, err := wal.Open(dir)
	if err != nil {
		return nil, err
	}
	st, err := maildir.Recover(jl, writer)
	if err != nil {
		jl.Close()
		return nil, fmt.Errorf("journal recovery: %w", err)
	}
	if !st.Empty() {
		log.Warn("journal replayed after an unclean stop", "records", st.Records, "written", st.Written,
			"repaired", st.Repaired, "present", st.Present, "cancelled", st.Cancelled,
			"deleted", st.Deleted, "unplaced", len(st.Unplaced))
	}
	for _, u := range st.Unplaced {
		log.Error("journal replay: a Maildir cannot take its message; kept for the operator to move", "maildir", u.Maildir,
			"saved", u.Saved, "err", u.Err)
	}
	if mode != maildir.SyncJournal {
		return writer, jl.Close()
	}
	writer.SetJournal(jl, cfg.Maildir.Checkpoint.D(), func(err error) {
		log.Error("journal checkpoint failed; will retry (messages stay in the journal)", "err", err)
	})
	return writer, nil
}

// wireServer builds the server, its backend and its TLS from cfg.
func wireServer(cfg config.Config, log *slog.Logger) (*daemon, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	accounts, err := openAccounts(cfg, log)
	if err != nil {
		return nil, err
	}
	d := &daemon{cfg: cfg, accounts: accounts, metrics: metrics.New(metrics.Options{}), health: newHealth("smtp", "queue")}
	tlsConf, err := d.loadTLS(cfg, log)
	if err != nil {
		return nil, err
	}
	domains := domainNames(cfg)
	mode, err := checkStorage(vfs.OS{}, cfg, log)
	if err != nil {
		return nil, err
	}
	writer, err := openMaildirs(cfg, mode, log)
	if err != nil {
		return nil, err
	}
	d.writer = writer
	d.local = local.New(local.Options{
		Domains:  domains,
		Accounts: accounts,
		MailDir:  filepath.Join(cfg.DataDir, "mail"),
		Writer:   writer,
		Logger:   log,
	})
	if d.reports, err = openReports(cfg, log); err != nil { // TLS-RPT (tlsrpt.go)
		return nil, err
	}
	if d.out, err = wireOutbound(cfg, d.local, d.metrics, d.metrics.TLSRecorder(d.reports.recorder()), log); err != nil {
		return nil, err
	}
	d.reports.wire(cfg, d.out.routing, d.mailReport, log)
	if d.dmarc, err = openDMARCReports(cfg, log); err != nil { // DMARC reports (dmarc.go)
		return nil, err
	}
	d.dmarc.wire(cfg, d.out.routing.resolver, d.mailReport, log)
	d.metrics.WatchQueue(d.out.queue)
	d.watchCertificates()              // web.go
	rewriter, err := openSRS(cfg, log) // [srs] (srs.go)
	if err != nil {
		return nil, err
	}
	in := inbound.Options{
		Local:    d.local,
		Accounts: accounts,
		Relay:    inbound.QueueRelay(d.out.queue),
		Handoff:  d.out.lmtp.Routes().Handed, // [[domain]] lmtp: queued, then LMTP
		Sign:     d.out.messageSigner(),
		Logger:   log,
	}
	wireSRS(rewriter, &in, d.out.bounces)
	if err := wireVerify(cfg, d.out.routing.resolver, &in, log); err != nil { // [verify] (verify.go)
		return nil, err
	}
	d.dmarc.record(&in) // verification results into the DMARC report rows
	// [[dnsbl]] (dnsbl.go)
	if err := wireDNSBL(cfg, d.out.routing.resolver, &in, log); err != nil {
		return nil, err
	}
	if d.greylist, err = openGreylist(cfg, log); err != nil { // [greylist] (greylist.go)
		return nil, err
	}
	wireGreylist(d.greylist, &in, d.metrics)
	if d.sendLimits, err = openAccountLimits(cfg, &in, log); err != nil { // [account_limits] (accountlimits.go)
		return nil, err
	}
	// [[milter]] (milter.go)
	if err := wireMilters(cfg, &in, log); err != nil {
		return nil, err
	}
	in.Events = d.metrics // abuse-control counters (metrics/dnsbl.go, …)
	backend := inbound.New(in)
	var listeners []server.Listener
	for _, l := range cfg.Listeners {
		role, err := server.ParseRole(l.Role)
		if err != nil {
			return nil, err
		}
		mode, err := server.ParseTLSMode(l.TLS)
		if err != nil {
			return nil, err
		}
		sl := server.Listener{Address: l.Address, Role: role, TLS: mode, Auth: l.AuthEnabled(),
			TrustedNetworks: cfg.TrustedOn(l), Pregreet: cfg.ListenerPregreet(l),
			ProxyProtocol: l.ProxyProtocol, ProxyFrom: config.Networks(l.ProxyFrom),
			XClientFrom: config.Networks(l.XClientFrom)}
		if role == server.RoleSink {
			sl.Backend, sl.Auth = server.Discard{}, false
			log.Warn("sink listener: every message is discarded (benchmarks only)", "listener", l.Address)
		}
		if mode != server.TLSNone {
			if tlsConf == nil {
				return nil, fmt.Errorf("listener %s uses tls %q but no certificate is configured (add [[tls.certificate]] or set tls.self_signed)", l.Address, l.TLS)
			}
			c := tlsConf.Clone()
			c.SessionTicketsDisabled = !l.SessionTickets
			sl.TLSConfig = c
		}
		listeners = append(listeners, sl)
	}
	d.srv = server.New(server.Options{
		Hostname:         cfg.Hostname,
		PostmasterDomain: postmasterDomain(cfg),
		Listeners:        listeners,
		Backend:          backend,
		Credentials:      credentials{accounts},
		Limits:           serverLimits(cfg.Limits),
		Logger:           log,
		Observer:         d.metrics,
		// RFC 3461: the queue, delivery and inbound honour RET, ENVID,
		// NOTIFY and ORCPT (docs/queue.md "Delivery status notifications").
		DSN: true,
	})
	return d, nil
}

// loadTLS loads the configured certificates, with the ACME certificate
// first when [acme] is on, or generates the self-signed development
// certificate when none is configured and self_signed is set.
func (d *daemon) loadTLS(cfg config.Config, log *slog.Logger) (*tls.Config, error) {
	var pairs []certs.Pair
	for _, c := range cfg.TLS.Certificates {
		pairs = append(pairs, certs.Pair{Cert: c.Cert, Key: c.Key})
	}
	if cfg.ACME.Enabled() { // acme.go; tls.self_signed is not used
		if err := d.startACME(cfg, pairs, log); err != nil {
			return nil, err
		}
		return certs.ServerConfig(d.certs, false), nil
	}
	if len(pairs) == 0 && cfg.TLS.SelfSigned {
		pair, created, err := certs.EnsureSelfSigned(filepath.Join(cfg.DataDir, "tls"), []string{cfg.Hostname})
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
		log.Warn("using a self-signed certificate (development only)", "cert", pair.Cert, "created", created)
		pairs = append(pairs, pair)
		d.selfSign = true
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	store, err := certs.Load(pairs)
	if err != nil {
		return nil, err
	}
	d.certs = store
	return certs.ServerConfig(store, false), nil
}

// printListeners prints the table of what is listening where.
func printListeners(w io.Writer, cfg config.Config, d *daemon) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tROLE\tTLS\tAUTH")
	for i, a := range d.srv.Addrs() {
		l := cfg.Listeners[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.String(), l.Role, l.TLS, authWord(l))
	}
	tw.Flush()
	fmt.Fprintf(w, "hostname %s, domains %s, data %s\n", cfg.Hostname, domainList(cfg), cfg.DataDir)
	if d.certs != nil {
		for _, c := range d.certs.Certificates() {
			fmt.Fprintf(w, "certificate %s (%s), issuer %s, expires %s\n", strings.Join(c.Names, ", "), c.Source,
				c.Issuer, c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
}

func domainList(cfg config.Config) string { return strings.Join(domainNames(cfg), ", ") }

// newLogger builds the slog logger the config asks for.
func newLogger(w io.Writer, lc config.Log) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
