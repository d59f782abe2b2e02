"""Starting the face's processes: one process list for the launch file and `dualtalk-run`."""
