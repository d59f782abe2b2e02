"""rosbag2 tools: recording corpus clips as bags, replaying them offline or live, scoring."""
