"""Team workbooks as files: the layout, building and verifying a workbook, reading what
staff typed back, and merging it into the next build. No database access: the jobs and
services hand this package frames and rows."""
