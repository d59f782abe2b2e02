"""The nodes' Fast DDS profile: applied unless the environment configures DDS itself. What it
does to the node's memory under hostile input is measured by dualtalk-fuzz (`make bench`)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dualtalk_ros.nodes.dds_profile import PROFILE, apply_dds_profile


def test_applied_to_a_plain_environment():
    env: dict[str, str] = {}
    note = apply_dds_profile(env)
    assert env["RMW_FASTRTPS_USE_QOS_FROM_XML"] == "1"
    path = Path(env["FASTDDS_DEFAULT_PROFILES_FILE"])
    assert path.is_file() and path.parts[-3:] == Path(PROFILE).parts and str(path) in note
    ns = {"d": "http://www.eprosima.com"}
    reader = ET.parse(path).getroot().find("d:profiles/d:data_reader", ns)
    assert reader.get("is_default_profile") == "true"
    assert reader.find("d:historyMemoryPolicy", ns).text == "DYNAMIC"


@pytest.mark.parametrize("env, words", [
    ({"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/robot_dds.xml"}, "FASTDDS_DEFAULT_PROFILES_FILE"),
    ({"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/old.xml"}, "FASTRTPS_DEFAULT_PROFILES_FILE"),
    ({"RMW_FASTRTPS_PUBLICATION_MODE": "ASYNCHRONOUS"}, "RMW_FASTRTPS_PUBLICATION_MODE"),
    ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, "rmw_cyclonedds_cpp"),
])
def test_the_environments_own_dds_configuration_wins(env, words):
    before = dict(env)
    note = apply_dds_profile(env)
    assert env == before and "not applied" in note and words in note
