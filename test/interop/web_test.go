package interop

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"smtpkit/internal/client"
)

// webArtifacts is where TestWebStatusPageBrowser keeps its screenshots:
// $SMTPKIT_ARTIFACTS/web, else test/interop/artifacts/web (gitignored).
func webArtifacts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("artifacts", "web")
	if a := os.Getenv("SMTPKIT_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "web")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestWebStatusPageBrowser drives the status page with headless Debian
// chromium (chromedp): an admin made by `smtpkit user add --admin` logs
// in, finds a message that Postfix's smtp-sink defers (-r RCPT) with the
// queue search, holds it, the sink is replaced by one that accepts,
// releases it and sees it delivered in the last deliveries (TLS plan and
// result). A screenshot of every step is kept (webArtifacts).
func TestWebStatusPageBrowser(t *testing.T) {
	chromium := Need(t, "chromium")
	began := time.Now()
	phase := func(what string) { t.Logf("%6.2fs %s", time.Since(began).Seconds(), what) }
	const ip = "127.17.7.1" // smtpkit's listeners and the page
	dir := webArtifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 1000),
		// Nothing beyond loopback: no component updates, and every host
		// name fails to resolve (the test uses IP literals only).
		chromedp.Flag("disable-component-update", true), chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE "+ip))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// Chromium starts while smtpkit does.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(browser) }()
	sinkAddr := freeAddrOn(t, "127.17.7.2")
	sinkDir, err := os.MkdirTemp("", "smtpkit-websink-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sinkDir, 0o777) // smtp-sink runs as nobody
	t.Cleanup(func() { os.RemoveAll(sinkDir) })
	deferring := startSink(t, sinkAddr, sinkDir, "-r", "RCPT")

	phase("sink started")
	httpAddr := freeAddrOn(t, ip)
	conf := outConf{routes: []outRoute{{domain: "sink.example", host: sinkAddr}}}
	// The test's client (from 127.0.0.1) relays through mx as a trusted
	// network, so that only the admin account costs a password hash.
	s := StartServer(t, ServerOptions{IP: ip, TopTOML: `trusted_networks = ["127.0.0.1"]`,
		ExtraTOML: conf.toml() + fmt.Sprintf("\n[http]\naddress = %q\n", httpAddr)})
	phase("smtpkit started")
	const admin, adminPW = "root@" + testDomain, "status page pw"
	cmd := exec.Command(s.bin, "user", "add", "--admin", "-config", s.ConfigPath, admin)
	cmd.Stdin = strings.NewReader(adminPW + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("smtpkit user add --admin: %v\n%s", err, out)
	}

	phase("admin account made")
	// The certificate-expiry gauge is exported for the served certificate.
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`smtpkit_certificate_not_after_timestamp_seconds{file=%q,name="mx.test.example"}`, s.CertPath); !strings.Contains(string(scraped), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, scraped)
	}
	c := dialHello(t, s.MX, "client.example")
	sendCtx, sendCancel := context.WithTimeout(context.Background(), outWait)
	res, err := c.Send(sendCtx, client.Envelope{From: "carol@outside.example", To: []string{"bob@sink.example"}}, bytes.NewReader(testMessage("web-status")))
	sendCancel()
	if err != nil || res.Data != nil {
		t.Fatalf("relaying through mx: %v / %v (rcpts %v)", err, res.Data, res.Rcpt)
	}
	c.Quit()
	waitLogCount(t, s, "delivery deferred", 1)

	step := 0
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			step++
			return os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d-%s.png", step, name)), png, 0o644)
		})
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, actions...); err != nil {
			t.Fatalf("%s: %v\nserver log:\n%s", what, err, s.Logs())
		}
	}
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(browser, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("text of #%s: %v", id, err)
		}
		return v
	}
	location := func() string {
		t.Helper()
		v, err := chromedp.Run(browser, chromedp.Location())
		if err != nil {
			t.Fatalf("location: %v", err)
		}
		return v
	}
	base := "http://" + httpAddr
	phase("message deferred")
	if err := <-started; err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	phase("chromium started")

	// No session: the page sends the browser to the login form.
	run("open the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("address")), shot("login"))
	url := location()
	if !strings.HasSuffix(url, "/login") {
		t.Errorf("without a session the browser is at %s, want /login", url)
	}
	run("log in",
		chromedp.SendKeys(chromedp.ID("address"), admin),
		chromedp.SendKeys(chromedp.ID("password"), adminPW),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("listeners")),
		shot("overview"))
	if who := text("who"); who != admin {
		t.Errorf("logged in as %q", who)
	}

	phase("logged in")
	// Find the deferred message by its recipient.
	run("search the queue",
		chromedp.Click(chromedp.CSS(`a[href="/queue"]`)),
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), "bob@sink"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.ID("matching")),
		shot("queue-search"))
	list := text("messages")
	if !strings.Contains(list, "bob@sink.example") || !strings.Contains(list, "deferred") {
		t.Fatalf("the search shows:\n%s", list)
	}
	run("open the message",
		chromedp.Click(chromedp.CSS(`#messages td a`)),
		chromedp.WaitVisible(chromedp.ID("msgid")))
	id := text("msgid")
	run("hold it",
		chromedp.Click(chromedp.CSS(`button[name="hold"]`)),
		chromedp.WaitVisible(chromedp.ID("held")),
		shot("held"))

	// An attempt that started before the hold finishes against the
	// deferring sink: wait until none is in flight before the next hop
	// starts accepting.
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(text("recipients"), "in flight"); {
		if time.Now().After(deadline) {
			t.Fatal("an attempt stays in flight after the hold")
		}
		time.Sleep(pollStep) // bounded poll of the page
		run("reload the message", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("held")))
	}
	phase("held")
	// Now the next hop accepts; a held message is not attempted.
	deferring.stop()
	accepting := startSink(t, sinkAddr, sinkDir)
	if got := accepting.files(t, "web-status"); len(got) != 0 {
		t.Fatalf("delivered while held: %d", len(got))
	}
	run("release it",
		chromedp.Click(chromedp.CSS(`button[name="release"]`)),
		chromedp.WaitVisible(chromedp.ID("flash")),
		shot("released"))
	eventually(t, "the message at the accepting sink", func() bool { return len(accepting.files(t, "web-status")) == 1 })

	phase("released and delivered")
	// The overview lists the delivery with its TLS plan and result.
	var deliveries string
	for deadline := time.Now().Add(10 * time.Second); ; {
		run("read the last deliveries", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("deliveries")))
		deliveries = text("deliveries")
		if strings.Contains(deliveries, "delivered") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivered row for %s:\n%s", id, deliveries)
		}
		time.Sleep(pollStep) // bounded poll of the page
	}
	run("screenshot", shot("delivered"))
	for _, want := range []string{id, "bob@sink.example", "delivered", "temporary_failure", "opportunistic (default)"} {
		if !strings.Contains(deliveries, want) {
			t.Errorf("last deliveries lack %q:\n%s", want, deliveries)
		}
	}
	run("the message left the queue", chromedp.Navigate(base+"/queue/"+id), chromedp.WaitVisible(chromedp.ID("error")))
	if gone := text("error"); !strings.Contains(gone, "No message") {
		t.Errorf("after delivery the message page says %q", gone)
	}
	phase("overview read")
	run("log out", chromedp.Click(chromedp.CSS(`form.logout button`)), chromedp.WaitVisible(chromedp.ID("address")))
	run("no session after logout", chromedp.Navigate(base+"/queue"), chromedp.WaitVisible(chromedp.ID("address")))
	if url := location(); !strings.HasSuffix(url, "/login") {
		t.Errorf("after logout /queue leads to %s", url)
	}
}
