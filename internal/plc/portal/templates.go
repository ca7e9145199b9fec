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
		"hasRole": func(c *core.Caller, role string) bool { return c.HasRole(role) },
		// fieldOf passes a form's errors and one field's name to the
		// "field" template.
		"fieldOf": func(errs map[string]string, name string) fieldErr { return fieldErr{Errors: errs, Name: name} },
	}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", p))
	}
	return out
}

type fieldErr struct {
	Errors map[string]string
	Name   string
}
