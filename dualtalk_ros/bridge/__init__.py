"""The rclpy-free layer between ROS and the core: messages, settings, and input dispatch.

Nothing here imports rclpy, so the offline bag tools use it without a ROS runtime and its logic
has fast unit tests.
"""
