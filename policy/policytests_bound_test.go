package policy

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/securedeviceaccess/sda/token"
)

// manyDevices returns 2000 devices, on no site the test directory has.
func manyDevices() []Change {
	var changes []Change
	for i := range 2000 {
		changes = append(changes, PutDevice(&Device{ID: fmt.Sprintf("%032x", i+100), Attributes: map[string]string{"site": "field"}}))
	}
	return changes
}

// suiteOf returns a suite of n copies of the test t, a JSON object
// without its name.
func suiteOf(n int, t string) string {
	var b strings.Builder
	b.WriteString(`{"time":"2030-01-02T03:04:05Z","tests":[`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":"t%d",%s}`, i, t)
	}
	b.WriteString("]}")
	return b.String()
}

// TestRunTestsResolutionBounded checks that tests deciding nothing cost
// little: a test stops at its first message, and the subjects and
// devices looked up over all tests are bounded.
func TestRunTestsResolutionBounded(t *testing.T) {
	e := explainEngine(t, pol("p1"))
	if err := e.Apply(manyDevices()...); err != nil {
		t.Fatal(err)
	}
	t.Run("a group without members selects no devices", func(t *testing.T) {
		s := mustParseSuite(t, suiteOf(maxPolicyTests, `"group":"nobody","devices":{"all":true},"operations":["read"],"expect":"deny"`))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rep, err := e.RunTests(s)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Failed != maxPolicyTests || rep.Results[0].Message == "" {
			t.Fatalf("report %+v", rep.Results[0])
		}
		// Listing the 2000 devices for each test allocates hundreds of
		// MB; the messages alone, a few.
		if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
			t.Errorf("allocated %d MB", got>>20)
		}
	})
	t.Run("selectors selecting nothing exhaust the budget", func(t *testing.T) {
		s := mustParseSuite(t, suiteOf(maxPolicyTests, `"group":"techs","devices":{"attributes":{"site":["nowhere"]}},"operations":["read"],"expect":"deny"`))
		_, err := e.RunTests(s)
		names := fieldNames(err)
		if len(names) != 1 || !strings.HasPrefix(names[0], "tests[") {
			t.Fatalf("err %v", err)
		}
		// Each test scans the subjects for techs and the devices.
		per := len(e.st.subjects) + len(e.st.devices)
		if want := fmt.Sprintf("tests[%d]", maxPolicyTestLookups/per); names[0] != want {
			t.Errorf("refused at %s, want %s", names[0], want)
		}
	})
	t.Run("within the budget the suite runs", func(t *testing.T) {
		s := mustParseSuite(t, suiteOf(10, `"group":"techs","devices":{"attributes":{"site":["nowhere"]}},"operations":["read"],"expect":"deny"`))
		rep, err := e.RunTests(s)
		if err != nil || rep.Failed != 10 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

func TestHTTPPolicyTestsResolutionBudget(t *testing.T) {
	env := newTestEnv(t, token.ProfileV2, pol("p1"))
	if _, err := env.store.Apply(t.Context(), manyDevices()...); err != nil {
		t.Fatal(err)
	}
	w := env.do("POST", policyTestsPath, env.adminKey, suiteOf(maxPolicyTests, `"group":"techs","devices":{"attributes":{"site":["nowhere"]}},"operations":["read"],"expect":"deny"`))
	e := decodeError(t, w)
	if w.Code != 400 || e.Type != errTypeValidation || len(e.Fields) != 1 || !strings.HasPrefix(e.Fields[0].Name, "tests[") {
		t.Fatalf("%d %+v", w.Code, e)
	}
}
