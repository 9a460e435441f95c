"""Bucket versioning and object versions through boto3 against a real agent."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.services.s3.helpers import error_of

BUCKET = "versioned"


def status(client) -> dict:
    out = client.get_bucket_versioning(Bucket=BUCKET)
    out.pop("ResponseMetadata")
    return out


def test_configuration_states(s3b) -> None:
    assert status(s3b) == {}
    s3b.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    assert status(s3b) == {"Status": "Enabled"}
    s3b.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    assert status(s3b) == {"Status": "Suspended"}
    s3b.put_bucket_versioning(
        Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Disabled"})
    assert status(s3b) == {"Status": "Enabled", "MFADelete": "Disabled"}


def test_bad_configurations_change_nothing(s3b) -> None:
    s3b.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    bad = [
        ({"Status": "On"}, ("MalformedXML", 400)),
        ({"Status": "Disabled"}, ("MalformedXML", 400)),
        ({"Status": "Enabled", "MFADelete": "Maybe"}, ("MalformedXML", 400)),
        ({}, ("IllegalVersioningConfigurationException", 400)),
        ({"Status": "Suspended", "MFADelete": "Enabled"}, ("NotImplemented", 501)),
    ]
    for config, expected in bad:
        with pytest.raises(ClientError) as exc:
            s3b.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration=config)
        assert error_of(exc) == expected, config
        assert status(s3b) == {"Status": "Enabled"}
    for call in (
        lambda: s3b.get_bucket_versioning(Bucket="no-such-bucket"),
        lambda: s3b.put_bucket_versioning(Bucket="no-such-bucket",
                                          VersioningConfiguration={"Status": "Enabled"}),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("NoSuchBucket", 404)


def test_versions_and_delete_markers(s3b) -> None:
    s3b.put_object(Bucket=BUCKET, Key="k", Body=b"before versioning")  # the null version
    s3b.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3b.put_object(Bucket=BUCKET, Key="k", Body=b"one")["VersionId"]
    v2 = s3b.put_object(Bucket=BUCKET, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)

    got = s3b.get_object(Bucket=BUCKET, Key="k")
    assert (got["Body"].read(), got["VersionId"]) == (b"two", v2)
    for version, body in ((v1, b"one"), ("null", b"before versioning")):
        got = s3b.get_object(Bucket=BUCKET, Key="k", VersionId=version)
        assert (got["Body"].read(), got["VersionId"]) == (body, version)
        assert s3b.head_object(Bucket=BUCKET, Key="k", VersionId=version)["VersionId"] == version

    marker = s3b.delete_object(Bucket=BUCKET, Key="k")
    assert marker["DeleteMarker"] is True
    marker_id = marker["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="k")
    assert error_of(exc) == ("NoSuchKey", 404)
    headers = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true"
    assert headers["x-amz-version-id"] == marker_id
    with pytest.raises(ClientError) as exc:
        s3b.head_object(Bucket=BUCKET, Key="k")
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    # the marker addressed by its id: 405
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="k", VersionId=marker_id)
    assert error_of(exc) == ("MethodNotAllowed", 405)
    # older versions are still there
    assert s3b.get_object(Bucket=BUCKET, Key="k", VersionId=v2)["Body"].read() == b"two"

    # deleting the marker by id brings v2 back
    removed = s3b.delete_object(Bucket=BUCKET, Key="k", VersionId=marker_id)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker_id
    assert s3b.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"two"
    # deleting a version for good
    removed = s3b.delete_object(Bucket=BUCKET, Key="k", VersionId=v2)
    assert removed["VersionId"] == v2 and "DeleteMarker" not in removed
    assert s3b.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"one"
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="k", VersionId=v2)
    assert error_of(exc) == ("NoSuchVersion", 404)


def test_suspended_versioning_overwrites_the_null_version(s3b) -> None:
    s3b.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    kept = s3b.put_object(Bucket=BUCKET, Key="k", Body=b"kept")["VersionId"]
    s3b.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    first = s3b.put_object(Bucket=BUCKET, Key="k", Body=b"null one")
    assert first["VersionId"] == "null"
    s3b.put_object(Bucket=BUCKET, Key="k", Body=b"null two")
    got = s3b.get_object(Bucket=BUCKET, Key="k")
    assert (got["Body"].read(), got["VersionId"]) == (b"null two", "null")
    assert s3b.get_object(Bucket=BUCKET, Key="k", VersionId=kept)["Body"].read() == b"kept"
    # a delete puts a null marker in the null version's place
    marker = s3b.delete_object(Bucket=BUCKET, Key="k")
    assert (marker["DeleteMarker"], marker["VersionId"]) == (True, "null")
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="k", VersionId="null")
    assert error_of(exc) == ("MethodNotAllowed", 405)
    assert s3b.get_object(Bucket=BUCKET, Key="k", VersionId=kept)["Body"].read() == b"kept"


def test_bad_version_ids(s3b) -> None:
    s3b.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    for call in (s3b.get_object, s3b.head_object, s3b.delete_object):
        with pytest.raises(ClientError) as exc:
            call(Bucket=BUCKET, Key="k", VersionId="not-a-version")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as exc:
        s3b.get_object(Bucket=BUCKET, Key="k", VersionId="0" * 32)
    assert error_of(exc) == ("NoSuchVersion", 404)
    assert s3b.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"x"
