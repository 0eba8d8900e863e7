package policy_test

import (
	"fmt"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

// Ask why a technician is refused, and what almost allowed the request.
func ExampleEngine_Explain() {
	var e policy.Engine
	err := e.Apply(
		policy.PutSubject(&policy.Subject{ID: "jim", Kind: policy.User, Groups: []string{"juniors"}}),
		policy.PutDevice(&policy.Device{ID: "0123456789abcdef0123456789abcdef", EndpointName: "hvac-1",
			Attributes: map[string]string{"site": "roof"}}),
		policy.PutPolicy(&policy.Policy{
			ID: "roof-read", Status: policy.Active, Effect: policy.Allow,
			Subjects:      policy.Subjects{Groups: []string{"juniors"}},
			Operations:    []policy.OperationRule{{Name: "read-data"}},
			Devices:       policy.DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}},
			TokenLifetime: 8 * time.Hour,
		}),
		policy.PutPolicy(&policy.Policy{
			ID: "roof-configure", Status: policy.Active, Effect: policy.Allow,
			Subjects:      policy.Subjects{Groups: []string{"seniors"}},
			Operations:    []policy.OperationRule{{Name: "configure"}},
			Devices:       policy.DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}},
			TokenLifetime: time.Hour,
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	x, err := e.Explain(&policy.Request{
		Subject:    "jim",
		Audience:   []string{"ep:hvac-1"},
		Operations: []string{"read-data", "configure"},
		Time:       time.Date(2030, 1, 2, 9, 0, 0, 0, time.UTC),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("allowed:", x.Allowed)
	for _, p := range x.Pairs {
		fmt.Printf("%s %s: allowed=%v", p.EndpointName, p.Operation, p.Allowed)
		if p.Reason != "" {
			fmt.Print(" (", p.Reason, ")")
		}
		fmt.Println()
		for _, m := range p.Matched {
			fmt.Printf("  matched %s until %s\n", m.Policy, m.ExpiresAt.Format(time.Kitchen))
		}
		for _, nm := range p.NearMisses {
			for _, f := range nm.Failed {
				fmt.Printf("  near miss %s: %s %s\n", nm.Policy, f.Condition, f.Message)
			}
		}
	}
	// Output:
	// allowed: false
	// hvac-1 read-data: allowed=true
	//   matched roof-read until 5:00PM
	// hvac-1 configure: allowed=false (no_allow_policy)
	//   near miss roof-configure: subject applies to groups seniors, not to user jim (groups juniors)
	//   near miss roof-read: operation names read-data, not configure
}
