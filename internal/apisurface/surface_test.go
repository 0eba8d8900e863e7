package apisurface

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt from the packages' exported identifiers")

// packages are the public packages, relative to the module root.
var packages = []string{
	"client",
	"device",
	"device/deviceprom",
	"device/devicetest",
	"policy",
	"policy/console",
	"policy/policyprom",
	"policy/policytest",
	"policy/sqlstore",
	"token",
	"transport",
	"transport/serial",
	"transport/transporttest",
	"trust",
	"trust/trusttest",
}

// TestSurface compares each public package's exported identifiers with
// testdata/<package>.txt and reports the identifiers added and removed.
func TestSurface(t *testing.T) {
	for _, pkg := range packages {
		t.Run(pkg, func(t *testing.T) {
			got := exported(t, filepath.Join("..", "..", filepath.FromSlash(pkg)))
			file := filepath.Join("testdata", strings.ReplaceAll(pkg, "/", "_")+".txt")
			if *update {
				if err := os.WriteFile(file, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			want := strings.Fields(string(data))
			for _, n := range got {
				if _, found := slices.BinarySearch(want, n); !found {
					t.Errorf("exported but not in %s: %s", file, n)
				}
			}
			for _, n := range want {
				if _, found := slices.BinarySearch(got, n); !found {
					t.Errorf("in %s but not exported: %s", file, n)
				}
			}
		})
	}
}

// exported lists, sorted, the exported identifiers that the non-test Go
// files in dir declare, whatever their build constraints: functions,
// types, constants and variables by name, and methods, struct fields and
// interface methods of exported types as Type.Name.
func exported(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					names = append(names, d.Name.Name)
					continue
				}
				if recv := receiverName(d.Recv.List[0].Type); ast.IsExported(recv) {
					names = append(names, recv+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
							names = append(names, members(s.Name.Name, s.Type)...)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// receiverName is the name of the type of a method receiver.
func receiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// members lists the exported fields of a struct type and the exported
// methods of an interface type, as typeName.Member.
func members(typeName string, e ast.Expr) []string {
	var list *ast.FieldList
	switch x := e.(type) {
	case *ast.StructType:
		list = x.Fields
	case *ast.InterfaceType:
		list = x.Methods
	default:
		return nil
	}
	var names []string
	for _, field := range list.List {
		for _, n := range field.Names {
			if n.IsExported() {
				names = append(names, typeName+"."+n.Name)
			}
		}
		if len(field.Names) == 0 { // an embedded type
			if n := receiverName(field.Type); ast.IsExported(n) {
				names = append(names, typeName+"."+n)
			}
		}
	}
	return names
}
