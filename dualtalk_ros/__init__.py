"""DualTalk ROS 2 nodes and tools; thin wrappers around `dualtalk_core`."""
