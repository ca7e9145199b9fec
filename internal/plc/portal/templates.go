package portal

import (
	"html/template"
	"io/fs"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// parseTemplates parses each page (templates/<page>.html) with the layout.
func parseTemplates() map[string]*template.Template {
	funcs := template.FuncMap{
		"utc":     utc,
		"hasRole": func(c *core.Caller, role string) bool { return c.HasRole(role) },
		// fieldOf passes a form's errors and one field's name to the
		// "field" template.
		"fieldOf": func(errs map[string]string, name string) fieldErr { return fieldErr{Errors: errs, Name: name} },
		// peopleOf passes person rows, the CSRF token and the page to come
		// back to to the "people" table (people.html).
		"peopleOf": func(rows []personRow, csrf, back string) peopleTable {
			return peopleTable{Rows: rows, CSRF: csrf, Back: back}
		},
	}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" || name == "peopletable" { // shared parts
			continue
		}
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/peopletable.html", p))
	}
	return out
}

type fieldErr struct {
	Errors map[string]string
	Name   string
}

type peopleTable struct {
	Rows       []personRow
	CSRF, Back string
}
