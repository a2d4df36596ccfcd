"""Reports for the cabinet: the monthly report, each agency's report card, the heat map."""
