"""The rclpy nodes: the DualTalk face, microphone capture and the avatar renderer."""
