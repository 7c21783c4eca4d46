"""pyairtable, unchanged, against the sandbox: the calls a real user makes.

Usage: python pyairtable_compat.py URL TOKEN BASE_ID  (prints OK on success, raises otherwise)
"""
import sys

from pyairtable import Api
from pyairtable.formulas import match

url, token, base_id = sys.argv[1], sys.argv[2], sys.argv[3]
api = Api(token, endpoint_url=url)

assert api.whoami()["id"].startswith("usr")
assert base_id in [b.id for b in api.bases()]
base = api.base(base_id)
schema = base.schema()
assert [t.name for t in schema.tables] == ["People", "Projects", "Tasks"]
tasks = base.table("Tasks")

# Paging (pageSize 10, maxRecords 25) and every record.
pages = [len(p) for p in tasks.iterate(page_size=10, max_records=25)]
assert pages == [10, 10, 5], pages
assert len(tasks.all()) == 168

# fields, sort, formulas (pyairtable builds and escapes them), views.
rows = tasks.all(fields=["Name", "Estimate (hours)"], sort=["-Estimate (hours)"], max_records=20)
est = [r["fields"].get("Estimate (hours)", 0) for r in rows]
assert est == sorted(est, reverse=True), est
assert all(set(r["fields"]) <= {"Name", "Estimate (hours)"} for r in rows)
done = tasks.all(formula=match({"Done": True}))
assert done and all(r["fields"].get("Done") for r in done)
assert len(tasks.all(formula="{Project} = 'Website redesign'")) == 14
assert len(tasks.all(view="Open tasks")) == 168 - len(done)
quoted = tasks.all(formula=match({"Name": "It's \"quoted\""}))
assert quoted == []

# Writes: single, batch (chunks of 10), update, replace, upsert, delete.
one = tasks.create({"Name": "pyairtable task", "Status": "Todo", "Estimate (hours)": 1.5})
assert one["fields"]["Name"] == "pyairtable task"
many = tasks.batch_create([{"Name": f"batch {i}"} for i in range(25)])
assert len(many) == 25
upd = tasks.update(one["id"], {"Done": True})
assert upd["fields"]["Done"] is True and upd["fields"]["Name"] == "pyairtable task"
rep = tasks.update(one["id"], {"Name": "replaced"}, replace=True)
assert rep["fields"] == {k: v for k, v in rep["fields"].items() if k not in ("Done", "Status")}
up = tasks.batch_upsert(
    [{"fields": {"Name": "replaced", "Priority": "High"}}, {"fields": {"Name": "brand new"}}],
    key_fields=["Name"],
)
assert up["updatedRecords"] == [one["id"]] and len(up["createdRecords"]) == 1
got = tasks.get(one["id"])
assert got["fields"]["Priority"] == "High"
assert tasks.delete(one["id"])["deleted"] is True
deleted = tasks.batch_delete([r["id"] for r in many])
assert len(deleted) == 25

# typecast and comments.
tc = tasks.create({"Name": "typecast", "Estimate (hours)": "2", "Status": "Later"}, typecast=True)
assert tc["fields"]["Estimate (hours)"] == 2 and tc["fields"]["Status"] == "Later"
c = tasks.add_comment(tc["id"], "hello from pyairtable")
assert [x.text for x in tasks.comments(tc["id"])] == ["hello from pyairtable"]
c.text = "edited"
c.save()
assert tasks.comments(tc["id"])[0].text == "edited"
c.delete()
assert tasks.comments(tc["id"]) == []

# Errors surface as HTTP errors with Airtable's types.
try:
    tasks.create({"Nope": 1})
    raise AssertionError("unknown field accepted")
except Exception as e:  # requests.HTTPError
    assert "UNKNOWN_FIELD_NAME" in str(e), e

# Schema writes.
t = base.create_table("Notes", [{"name": "Title", "type": "singleLineText"}])
t.create_field("Score", "number", options={"precision": 1})
t.create({"Title": "x", "Score": 2.5})
assert t.first()["fields"] == {"Title": "x", "Score": 2.5}
print("OK")
