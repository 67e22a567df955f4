"""Planning: option parsing and validation, grids, the matrix of cells.  Imports only
`harness.core`."""
