"""The query language as an app: parser, resolver, planner and executor, the library page, the
search API and the admin's `q:` search (docs/architecture.md#search). Public names: `apps.search.query`."""
