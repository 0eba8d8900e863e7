package policy_test

import (
	"fmt"
	"time"

	"github.com/securedeviceaccess/sda/policy"
)

// Preview a policy change: which grants would it give, to whom, on which
// devices? Nothing is written.
func ExampleEngine_WhatIf() {
	var e policy.Engine
	err := e.Apply(
		policy.PutSubject(&policy.Subject{ID: "alice", Kind: policy.User, Groups: []string{"technicians"}}),
		policy.PutSubject(&policy.Subject{ID: "bob", Kind: policy.User, Groups: []string{"technicians"}}),
		policy.PutSubject(&policy.Subject{ID: "carol", Kind: policy.User}),
		policy.PutDevice(&policy.Device{ID: "0123456789abcdef0123456789abcdef", EndpointName: "hvac-1",
			Attributes: map[string]string{"site": "roof"}}),
		policy.PutDevice(&policy.Device{ID: "fedcba9876543210fedcba9876543210", EndpointName: "hvac-2",
			Attributes: map[string]string{"site": "roof"}}),
		policy.PutDevice(&policy.Device{ID: "00000000000000000000000000000003", EndpointName: "pump-1",
			Attributes: map[string]string{"site": "cellar"}}),
	)
	if err != nil {
		panic(err)
	}
	roof := &policy.Policy{
		ID: "roof", Status: policy.Active, Effect: policy.Allow,
		Subjects:      policy.Subjects{Groups: []string{"technicians"}},
		Operations:    []policy.OperationRule{{Name: "configure"}},
		Devices:       policy.DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}},
		TokenLifetime: time.Hour,
	}
	now := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
	im, err := e.WhatIf([]policy.Change{policy.PutPolicy(roof)}, now, &policy.ImpactOptions{Limit: 2, Structured: true})
	if err != nil {
		panic(err)
	}
	fmt.Println("gained", im.Gained, "lost", im.Lost)
	for _, s := range im.Summary {
		fmt.Printf("%s %s: %s (%d) on %s %v: %d grants\n", s.Change, s.Operation,
			s.Subjects.Description, s.Subjects.Count, s.Devices.Description, s.Devices.Sample, s.Grants)
	}
	for _, d := range im.Details {
		fmt.Println(d.Change, d.Subject, d.EndpointName, d.Operation)
	}
	fmt.Println("more:", im.DetailsTruncated)
	// Output:
	// gained 4 lost 0
	// gained configure: group technicians (2) on attributes site=roof [hvac-1 hvac-2]: 4 grants
	// gained alice hvac-1 configure
	// gained alice hvac-2 configure
	// more: true
}

// Compare two snapshots of a store, such as two export documents: what
// did tightening a policy to one site take away?
func ExampleCompare() {
	subjects := []*policy.Subject{{ID: "alice", Kind: policy.User, Groups: []string{"technicians"}}}
	devices := []*policy.Device{
		{ID: "0123456789abcdef0123456789abcdef", EndpointName: "hvac-1", Attributes: map[string]string{"site": "roof"}},
		{ID: "00000000000000000000000000000003", EndpointName: "pump-1", Attributes: map[string]string{"site": "cellar"}},
	}
	maintenance := func(sites ...string) *policy.Policy {
		return &policy.Policy{
			ID: "maintenance", Status: policy.Active, Effect: policy.Allow,
			Subjects:      policy.Subjects{Groups: []string{"technicians"}},
			Operations:    []policy.OperationRule{{Name: "update-firmware"}},
			Devices:       policy.DeviceSelector{Attributes: map[string][]string{"site": sites}},
			TokenLifetime: time.Hour,
		}
	}
	before := &policy.Snapshot{Subjects: subjects, Devices: devices, Policies: []*policy.Policy{maintenance("roof", "cellar")}}
	after := &policy.Snapshot{Subjects: subjects, Devices: devices, Policies: []*policy.Policy{maintenance("roof")}}
	im, err := policy.Compare(before, after, time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC), nil)
	if err != nil {
		panic(err)
	}
	for _, d := range im.Details {
		fmt.Println(d.Change, d.Subject, d.EndpointName, d.Operation)
	}
	// Output:
	// lost alice pump-1 update-firmware
}
