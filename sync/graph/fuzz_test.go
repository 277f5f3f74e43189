package graph

import "testing"

func FuzzParsePage(f *testing.F) {
	seeds := []string{
		`{"value":[]}`,
		`{"@odata.context":"x","value":[{"@odata.type":"#microsoft.graph.group","id":"g","displayName":"G"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users/u/memberOf?$skiptoken=RFNwdA"}`,
		`{"value":[{"@odata.type":"#microsoft.graph.group","id":"g","displayName":null}]}`,
		`{"value":[{"@odata.type":"#microsoft.graph.directoryRole","id":"r"}]}`,
		`{"value":[{"id":"a","principalId":"g","principalType":"Group","principalDisplayName":"G"}]}`,
		`{"value":null}`,
		`{}`,
		`[]`,
		`{"value":[1,2]}`,
		`{"value":[{"id":5}]}`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parsePage(body)
		if err != nil {
			if len(p.Items) != 0 || p.NextLink != "" {
				t.Errorf("error %v with a non-empty page", err)
			}
			return
		}
		if p.Items == nil {
			t.Error("success without a value array")
		}
	})
}
