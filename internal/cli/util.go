package cli

import (
	"encoding/json"
	"fmt"
)

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func pluralize(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
