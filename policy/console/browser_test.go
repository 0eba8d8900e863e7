package console

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/securedeviceaccess/sda/internal/testenv"
	"github.com/securedeviceaccess/sda/policy"
)

// screenshots, when set, is the directory where TestBrowser writes PNG
// screenshots of the main pages (docs/console in the repository):
//
//	go test ./policy/console -run TestBrowser -console.screenshots ../../docs/console
var screenshots = flag.String("console.screenshots", "", "write screenshots of the console's main pages to this `directory`")

// chrome drives a headless Chromium through the console, recording the
// JavaScript dialogs that open (none should) and the console messages
// about the Content-Security-Policy.
type chrome struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	dialogs  []string
	messages []string
}

const browserStepTimeout = 90 * time.Second // generous: a loaded 2-core machine, with -race

func newChrome(t *testing.T, base string) *chrome {
	t.Helper()
	exe := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // the tests may run as root, where Chromium refuses its sandbox
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	c := &chrome{t: t, ctx: ctx, base: base}
	// Start the browser before subscribing.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	opening := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for e, err := range opening {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.dialogs = append(c.dialogs, string(e.Type)+": "+e.Message)
			c.mu.Unlock()
			// Dismiss it, from another goroutine than the one receiving events.
			go chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: false})
				return err
			}))
		}
	}()
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.messages = append(c.messages, m.String())
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *chrome) do(steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.t.Fatalf("browser: %v", err)
	}
}

func run[T any](c *chrome, a chromedp.Action[T]) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		c.t.Fatalf("browser: %v", err)
	}
	return v
}

// waitTitle waits until the page's title starts with want: the page the
// last click led to has loaded.
func (c *chrome) waitTitle(want string) {
	c.t.Helper()
	deadline := time.Now().Add(browserStepTimeout)
	var got string
	for time.Now().Before(deadline) {
		got = run(c, chromedp.Title())
		if strings.HasPrefix(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("page title %q, want %q...; page:\n%s", got, want, run(c, chromedp.Text(chromedp.CSS("main"))))
}

// signIn signs in with key from the sign-in page.
func (c *chrome) signIn(key string) {
	c.t.Helper()
	c.do(chromedp.Navigate(c.base+"/console/sign-in"), chromedp.SendKeys(chromedp.ID("api_key"), key),
		chromedp.Click(chromedp.CSS("main button[type=submit]")))
	c.waitTitle("Policies")
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	return run(c, chromedp.Text(chromedp.CSS(sel)))
}

// byID is the selector of the element with an id, which may hold dots.
func byID(id string) chromedp.CSS { return chromedp.CSS(`[id="` + id + `"]`) }

// shot writes a screenshot of the page as name.png under -console.screenshots.
func (c *chrome) shot(name string) {
	c.t.Helper()
	if *screenshots == "" {
		return
	}
	png := run(c, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chrome) checkQuiet() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dialogs) > 0 {
		c.t.Errorf("JavaScript dialogs opened: %q", c.dialogs)
	}
	for _, m := range c.messages {
		if strings.Contains(m, "Content Security Policy") || strings.Contains(m, "Content-Security-Policy") {
			c.t.Errorf("the console's own page broke its CSP: %s", m)
		}
	}
}

// TestBrowser drives Debian's headless Chromium through the console: sign
// in, create a policy with the form, see the escaping of a hostile name,
// delete with the confirmation, use the keyboard, sign out.
func TestBrowser(t *testing.T) {
	f := newFixture(t, nil)
	f.clock.t = time.Now() // the browser's cookie jar runs on real time
	f.svc.Apply(t,
		policy.PutSubject(&policy.Subject{ID: "bob", Kind: policy.User, Groups: []string{"technicians", "juniors"}}),
		policy.PutDevice(&policy.Device{ID: "0123456789abcdef0123456789abcdef", EndpointName: "hvac-1", Attributes: map[string]string{"site": "rooftop"}}),
		policy.PutDevice(&policy.Device{ID: "00112233445566778899aabbccddeeff", EndpointName: "hvac-2", Attributes: map[string]string{"site": "basement"}}),
		policy.PutPolicy(&policy.Policy{ID: "roof", Name: "Rooftop technicians", Status: policy.Active, Effect: policy.Allow,
			Subjects: policy.Subjects{Groups: []string{"technicians"}}, Operations: []policy.OperationRule{{Name: "read-data"}},
			Devices: policy.DeviceSelector{Attributes: map[string][]string{"site": {"rooftop"}}}, TokenLifetime: time.Hour}),
	)
	c := newChrome(t, f.srv.URL)

	t.Run("sign in", func(t *testing.T) {
		c.t = t
		c.do(chromedp.Navigate(c.base + "/console/"))
		c.waitTitle("Sign in")
		c.shot("sign-in")
		c.signIn(f.svc.AdminKey)
		if got := c.text("main table"); !strings.Contains(got, "Rooftop technicians") {
			t.Errorf("the policies page shows %q", got)
		}
		// No script can read the session cookie.
		if got := run(c, chromedp.Evaluate[string]("document.cookie")); got != "" {
			t.Errorf("document.cookie = %q, want the session cookie hidden (HttpOnly)", got)
		}
		if n := run(c, chromedp.Evaluate[int]("localStorage.length + sessionStorage.length")); n != 0 {
			t.Errorf("%d entries in web storage", n)
		}
		c.shot("policies")
	})
	t.Run("keyboard and styles", func(t *testing.T) {
		c.t = t
		c.do(chromedp.KeyEvent(kb.Tab))
		if got := run(c, chromedp.Evaluate[string]("document.activeElement.textContent")); got != "Skip to content" {
			t.Errorf("the first Tab focuses %q, want the skip link", got)
		}
		// The skip link is hidden until focused: the stylesheet loaded under the CSP.
		if got := run(c, chromedp.Evaluate[string]("getComputedStyle(document.activeElement).position")); got != "absolute" {
			t.Errorf("the skip link's position is %q: the stylesheet did not apply", got)
		}
		c.do(chromedp.KeyEvent(kb.Enter))
		if got := run(c, chromedp.Evaluate[string]("document.activeElement.id")); got != "main" {
			t.Errorf("after the skip link, the focus is on %q, want main", got)
		}
	})
	t.Run("create a policy", func(t *testing.T) {
		c.t = t
		c.do(chromedp.Click(chromedp.CSS(`a[href="/console/new/policies"]`)))
		c.waitTitle("New policy")
		c.do(
			chromedp.SendKeys(byID("id"), "night-shift"),
			chromedp.SendKeys(byID("name"), "Night shift"),
			chromedp.SendKeys(byID("subjects.users"), "bob"),
			chromedp.SendKeys(byID("operations"), "read-data\nconfigure [{\"arg\":0,\"range\":[16,28]}]"),
			chromedp.SendKeys(byID("devices.endpoint_names"), "hvac-1"),
			chromedp.SetValue(byID("token_lifetime_seconds"), "900"),
		)
		c.shot("policy-form")
		c.do(chromedp.Click(chromedp.CSS(`button[value="save"]`)))
		c.waitTitle("policy night-shift")
		if got := c.text("main"); !strings.Contains(got, "Saved.") || !strings.Contains(got, "Night shift") {
			t.Errorf("the policy page shows %q", got)
		}
		if f.apiStatus(t, "policies/night-shift") != 200 {
			t.Error("the policy was not written")
		}
	})
	t.Run("validation error from the API", func(t *testing.T) {
		c.t = t
		c.do(chromedp.Navigate(c.base + "/console/new/policies"))
		c.waitTitle("New policy")
		c.do(
			chromedp.SendKeys(byID("id"), "broken"),
			chromedp.SendKeys(byID("subjects.users"), "bob"),
			chromedp.SendKeys(byID("operations"), "read-data"),
			chromedp.SendKeys(byID("devices.endpoint_names"), "hvac-1"),
			chromedp.SetValue(byID("token_lifetime_seconds"), "5"),
			chromedp.Click(chromedp.CSS(`button[value="save"]`)),
		)
		c.do(chromedp.WaitVisible(byID("err-token_lifetime_seconds")))
		if got := c.text(`[id="err-token_lifetime_seconds"]`); !strings.Contains(got, "between") {
			t.Errorf("the error next to the lifetime says %q", got)
		}
		c.shot("validation-error")
	})
	t.Run("escaping", func(t *testing.T) {
		c.t = t
		const evil = `<script>alert(1)</script>`
		c.do(chromedp.Navigate(c.base + "/console/new/policies"))
		c.waitTitle("New policy")
		c.do(
			chromedp.SendKeys(byID("id"), "xss"),
			chromedp.SendKeys(byID("name"), evil),
			chromedp.SendKeys(byID("description"), `"><img src=x onerror=alert(2)>`),
			chromedp.SendKeys(byID("subjects.users"), "bob"),
			chromedp.SendKeys(byID("operations"), "read-data"),
			chromedp.Click(byID("devices.all")),
			chromedp.Click(chromedp.CSS(`button[value="save"]`)),
		)
		c.waitTitle("policy xss")
		if got := c.text("main table"); !strings.Contains(got, evil) {
			t.Errorf("the name does not show as text: %q", got)
		}
		c.do(chromedp.Navigate(c.base + "/console/policies?q=" + "%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
		c.waitTitle("Policies")
		if got := c.text("main table"); !strings.Contains(got, evil) {
			t.Errorf("the list does not show the name as text: %q", got)
		}
		if n := run(c, chromedp.Evaluate[int]("document.querySelectorAll('main script, main img').length")); n != 0 {
			t.Errorf("%d script or img elements made from data", n)
		}
		c.checkQuiet()
	})
	t.Run("delete with confirmation", func(t *testing.T) {
		c.t = t
		c.do(chromedp.Navigate(c.base + "/console/policies/xss"))
		c.waitTitle("policy xss")
		c.do(chromedp.Click(chromedp.CSS("a.button.danger")))
		c.waitTitle("Delete policy xss")
		if f.apiStatus(t, "policies/xss") != 200 {
			t.Fatal("deleted before the confirmation")
		}
		c.do(chromedp.Click(chromedp.CSS("main button.danger")))
		c.waitTitle("Policies")
		if got := c.text("main"); !strings.Contains(got, "Deleted.") {
			t.Errorf("after the deletion the page shows %q", got)
		}
		if f.apiStatus(t, "policies/xss") != 404 {
			t.Error("the policy was not deleted")
		}
	})
	t.Run("sign out", func(t *testing.T) {
		c.t = t
		c.do(chromedp.Click(chromedp.CSS("form.sign-out button")))
		c.waitTitle("Sign in")
		if f.con.sessions.len() != 0 {
			t.Error("the session is still held")
		}
		c.do(chromedp.Navigate(c.base + "/console/policies"))
		c.waitTitle("Sign in")
	})
	c.t = t
	c.checkQuiet()
}
